"""Tools run by hand against the project (load tests); neither the library nor the served app."""
