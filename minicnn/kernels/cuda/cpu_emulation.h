// CPU emulation of the small part of CUDA that minicnn's kernels use, so the very
// same .cu files compile with the system C++ compiler and run on any machine.
//
// A launch of grid x block threads becomes two loops (blocks, then the threads of
// a block) that set blockIdx/threadIdx and call the kernel body once per thread,
// one thread after another. That is faithful for kernels in which no thread reads
// what another writes in the same launch -- every minicnn kernel: each output
// entry has exactly one writer (gather form). What cannot be emulated is left
// undefined on purpose, so a kernel using it fails to compile here instead of
// being run wrongly: __shared__, __syncthreads, atomics, warp intrinsics.
//
// run() can also visit the threads in reverse order: a kernel whose result
// depends on the order threads run in gives different results both ways.
//
// CuPy compiles every kernel with -ftz=true: float32 arithmetic and comparisons on
// the GPU treat subnormal inputs and results as zero. run() does the same on the
// CPU when asked (the SSE control bits FTZ and DAZ, for the launch only), so the
// emulation computes what the GPU computes, not what NumPy does, for such values.
#pragma once
#include <math.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define EMU_HAS_FTZ 1
#endif

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };

static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

#define __global__
#define __device__ inline
#define __host__
#define __forceinline__
#define __restrict__ __restrict

// CUDA's integer min/max (device overloads); floats use fminf/fmaxf in CUDA too.
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }

namespace emu {

static inline uint3 unflatten(unsigned long long k, const unsigned int* dims)
{
    uint3 u;
    u.x = (unsigned int)(k % dims[0]);
    u.y = (unsigned int)((k / dims[0]) % dims[1]);
    u.z = (unsigned int)(k / ((unsigned long long)dims[0] * dims[1]));
    return u;
}

// Run `body` once for every thread of a grid x block launch.
template <class Body>
static void run(const unsigned int* grid, const unsigned int* block, int reverse,
                int flush_subnormals, Body body)
{
#ifdef EMU_HAS_FTZ
    const unsigned int saved_csr = _mm_getcsr();
    if (flush_subnormals)
        _mm_setcsr(saved_csr | 0x8040);   // FTZ (results) | DAZ (inputs)
#endif
    gridDim.x = grid[0]; gridDim.y = grid[1]; gridDim.z = grid[2];
    blockDim.x = block[0]; blockDim.y = block[1]; blockDim.z = block[2];
    const unsigned long long blocks = (unsigned long long)grid[0] * grid[1] * grid[2];
    const unsigned long long threads = (unsigned long long)block[0] * block[1] * block[2];
    for (unsigned long long kb = 0; kb < blocks; ++kb) {
        blockIdx = unflatten(reverse ? blocks - 1 - kb : kb, grid);
        for (unsigned long long kt = 0; kt < threads; ++kt) {
            threadIdx = unflatten(reverse ? threads - 1 - kt : kt, block);
            body();
        }
    }
#ifdef EMU_HAS_FTZ
    _mm_setcsr(saved_csr);
#endif
}

}  // namespace emu
