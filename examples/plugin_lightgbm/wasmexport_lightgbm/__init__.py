"""A wasmexport adapter for LightGBM, registered through an entry point."""
