"""The program PyFlink runs to submit the alert job (standard library and pyflink only)."""
