"""The settings of each module, composed into one `Settings` class by `settings.py`."""
