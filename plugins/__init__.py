"""The built-in plugins; each folder is one plugin, registered through the `tunefactory.plugins` entry-point group."""
