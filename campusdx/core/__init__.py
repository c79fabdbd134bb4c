"""The core every layer stands on: settings and configuration, the PX-1.0 profile and the
source declarations (contracts), code sets, ID numbers, durable writes and locks."""
