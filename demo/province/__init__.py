"""The simulated provincial education data exchange platform (PX-1.0 receiver)."""

from campusdx.demo.province.simulator import Province, available_code_sets

__all__ = ["Province", "available_code_sets"]
