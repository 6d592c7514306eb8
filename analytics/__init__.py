"""Privacy-first web analytics: cookieless beacons in, hashed coarse events stored, nothing personal on disk."""

__version__ = "0.1.0"
