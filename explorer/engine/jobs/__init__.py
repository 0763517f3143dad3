"""The engine's jobs, one module a tab (map, interpolate, compare, diffusion, train), named as the tab and its
folder in `explorer/views/`; `common` holds what several tabs ask for (decoding, the judges, the test images) and
`loading` opens and lists models. Importing a job module loads no torch: each `run` imports it on the engine
thread."""
