"""Blue-to-white noise (the BNDM baseline) on 16x16 grey `shapes`: digits_bluenoise.py's process on
shapes_edge.py's data."""

from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("digits_bluenoise.py"))
    config.data = load_config(Path(__file__).with_name("shapes_edge.py")).data
    return config
