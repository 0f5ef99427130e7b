"""Where the fit runs: device choice and the out-of-memory fallback, several processes under torchrun."""
