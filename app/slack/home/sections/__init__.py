"""The parts of the App Home tab, one module per section."""
