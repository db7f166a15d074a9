"""fieldflow: normalizing flows and Markov-chain baselines for lattice φ⁴ theory, with honest
statistics."""

__version__ = "0.1.0"
