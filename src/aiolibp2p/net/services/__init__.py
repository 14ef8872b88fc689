"""Protocol drivers: each moves bytes between a stream and its sans-IO codec in proto/."""
