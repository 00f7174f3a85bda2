"""reluspec: specialisation in soft committee machines at high temperature."""

__version__ = "0.1.0"
