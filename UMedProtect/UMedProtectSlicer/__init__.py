"""Slicer-side helpers of the UMedProtect module: MRML only, no Qt, so they run under slicer-core in CI."""
