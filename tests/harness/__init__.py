"""Test infrastructure shared by the test folders and the benchmarks: the pack factory and the import-rule checker."""
