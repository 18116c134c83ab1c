"""views.tables' names that pages/lora.py still takes from here."""
from views.tables import class_names, lora_parameters, percent, settings_error, wrong_on  # noqa: F401
