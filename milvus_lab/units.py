"""Byte units, named once (memory figures in reports, plots, /proc readings)."""

#: bytes per KiB (/proc reports kB meaning KiB)
KIB = 1024
#: bytes per MiB
MIB = KIB * KIB
#: bytes per GiB (the sizing tool's and Milvus's "GB" of memory)
GIB = KIB * MIB
