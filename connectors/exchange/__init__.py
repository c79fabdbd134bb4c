"""Publishing to the provincial exchange platform under interface profile PX-1.0.

The profile itself is a contract every stage reads (``campusdx.core.profile``). Here:
``package`` builds and checks packages; ``manifest`` and ``receipts`` validate what is read
back; ``signing`` holds hashes, HMAC and the key; ``gateway`` and ``sftp`` deliver; ``ledger``
remembers; ``delta`` computes DELTAs; ``policy`` chooses FULL or DELTA; ``publisher`` ties
them together.
"""
