"""Publishing to the provincial exchange platform under interface profile PX-1.0.

``profile`` reads the declarations in ``schemas/exchange/``; ``package`` builds and checks
packages; ``signing`` holds hashes, HMAC and the key; ``gateway`` delivers; ``ledger``
remembers; ``publisher`` ties them together.
"""

from campusdx.core.profile import Dataset, Field, FieldType, Profile, load_profile

__all__ = ["Dataset", "Field", "FieldType", "Profile", "load_profile"]
