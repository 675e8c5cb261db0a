"""Backbones and the LightningModule that fine-tunes them."""
