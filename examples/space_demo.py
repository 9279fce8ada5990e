"""A tour of naseval.space: sizes, indexing, sampling and the encodings each policy uses."""

import numpy as np

from naseval.space import Architecture, Space

for n in range(1, 9):
    print(f"Space({n}): {Space(n).size:>13,} architectures")

sharing = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
print(f"{sharing!r}: {sharing.size} architectures")

darts_v2 = Architecture.from_genotype(
    "Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), "
    "('tanh', 2), ('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))"
)
space = Space(8)
print(f"\nDARTS_V2 is architecture #{space.index(darts_v2):,} of Space(8)")
print(darts_v2.describe())
print("ENAS/NAO tokens:", darts_v2.to_tokens())
print("DARTS alpha shape:", darts_v2.to_alpha().shape)

rng = np.random.default_rng(0)
print("\nthree uniform samples:", *(str(space.sample(rng)) for _ in range(3)), sep="\n  ")
