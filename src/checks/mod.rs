//! Host checks: the operations-file format, every check type, and the runner.
