"""Typed config trees, loaded from TOML presets/files plus ``key=value`` overrides."""

from mmscale.config.load import load_config, preset_path, list_presets

__all__ = ["load_config", "preset_path", "list_presets"]
