"""toxic-distill: compress a fine-tuned encoder classifier into a smaller student, and compare methods."""

from distill.errors import UserError

__all__ = ["UserError"]
