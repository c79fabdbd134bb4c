"""The simulated campus: source systems and the provincial platform of the embedded default."""
