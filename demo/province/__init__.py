"""The simulated provincial education data exchange platform (PX-1.0 receiver).

Its package checks (:mod:`.package_checks`) are its own, written from the profile with the
standard library only; ``scripts/verify_px_package.py`` runs the same file.
"""

from campusdx.demo.province.simulator import Province, available_code_sets

__all__ = ["Province", "available_code_sets"]
