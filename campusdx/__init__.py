"""campusdx: the university's data exchange platform (学校数据管理与融合)."""

__version__ = "0.1.0"
