// Durability against a real engine: written by its owner.
