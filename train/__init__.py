"""Offline training job: posters in, a calibrated fp16 TFLite artifact out.

It uses the function's own package (one-way dependency: train -> function), so the pixels used
for training and for the parity check come from the serving code itself.
"""
