"""minicnn side by side with Keras 3 (TensorFlow CPU): layers, losses, optimizers, models."""
