# A package, so that unit/ and e2e/ may each hold a test file of the same name.
