"""What two or more views share: the image panel, the plane a 2-D view shows, tiling images into one picture, an
image grid with captions, navigation, PNG/GIF export and the class palette."""
