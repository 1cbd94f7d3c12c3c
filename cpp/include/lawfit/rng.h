// rng.h: the counter-based generator behind in-kernel bootstrap resampling.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// 128-bit counter and a 64-bit key map to 128 random bits through ten rounds of two 32 x 32
// -> 64-bit multiplications, xors and a Weyl key schedule.  Nothing is stored between draws,
// so any thread can draw any number of the stream directly: the resample weights of
// (seed, problem, resample) are the same on every backend, thread count and chunking, and
// never materialised.  python/lawfit/reference/rng.py implements the same stream in NumPy;
// the tests hold the two bitwise equal and check the published known-answer vectors.
//
// The bootstrap stream: key = the 64-bit seed; counter = (problem low 32 bits, problem high
// 32 bits, resample, block).  Draw j of a resample is word j % 4 of block j / 4; an index in
// [0, n) is (word * n) >> 32 (Lemire's multiply-shift: no division, no branch; its bias is
// below n / 2^32 per index, under 1e-6 for any problem a lane holds).
#pragma once

#include "hd.h"

namespace lawfit {

struct Philox4x32 {
  unsigned int v[4];
};

LAWFIT_HD LAWFIT_INLINE Philox4x32 philox4x32_10(Philox4x32 ctr, unsigned int k0, unsigned int k1) {
  constexpr unsigned int kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr unsigned int kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const unsigned long long p0 = static_cast<unsigned long long>(kM0) * ctr.v[0];
    const unsigned long long p1 = static_cast<unsigned long long>(kM1) * ctr.v[2];
    const unsigned int hi0 = static_cast<unsigned int>(p0 >> 32), lo0 = static_cast<unsigned int>(p0);
    const unsigned int hi1 = static_cast<unsigned int>(p1 >> 32), lo1 = static_cast<unsigned int>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Block `block` (four draws) of the bootstrap stream of (seed, problem, resample).
LAWFIT_HD LAWFIT_INLINE Philox4x32 bootstrap_block(unsigned long long seed, long long problem,
                                                   unsigned int resample, unsigned int block) {
  const unsigned long long p = static_cast<unsigned long long>(problem);
  const Philox4x32 ctr{{static_cast<unsigned int>(p), static_cast<unsigned int>(p >> 32),
                        resample, block}};
  return philox4x32_10(ctr, static_cast<unsigned int>(seed), static_cast<unsigned int>(seed >> 32));
}

// An index in [0, n) from one 32-bit word.
LAWFIT_HD LAWFIT_INLINE int index_below(unsigned int word, int n) {
  return static_cast<int>((static_cast<unsigned long long>(word) * static_cast<unsigned int>(n)) >> 32);
}

// Draw j (an index in [0, n)) of the bootstrap stream of (seed, problem, resample).
LAWFIT_HD LAWFIT_INLINE int bootstrap_index(unsigned long long seed, long long problem,
                                            unsigned int resample, int j, int n) {
  const Philox4x32 r = bootstrap_block(seed, problem, resample, static_cast<unsigned int>(j / 4));
  return index_below(r.v[j % 4], n);
}

// The pairs bootstrap's weights of (seed, problem, resample) over n units (points, or groups
// for a grouped bootstrap): counts[i] = how often unit i was drawn in n draws with
// replacement (a multinomial(n, 1/n) vector summing to n).  counts must hold n zeros.
template <class Count>
LAWFIT_HD void bootstrap_counts(unsigned long long seed, long long problem, unsigned int resample,
                                int n, Count* counts) {
  for (int j0 = 0; j0 < n; j0 += 4) {
    const Philox4x32 r = bootstrap_block(seed, problem, resample, static_cast<unsigned int>(j0 / 4));
    for (int k = 0; k < 4 && j0 + k < n; ++k) counts[index_below(r.v[k], n)] += Count(1);
  }
}

}  // namespace lawfit
