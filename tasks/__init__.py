"""OCP task definitions built on the engine: what each OCP API call turns into."""
