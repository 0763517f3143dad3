"""What two or more views share: tiling images into one picture, an image grid with captions, PNG/GIF export."""
