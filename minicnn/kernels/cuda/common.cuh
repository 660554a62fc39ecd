// Helpers shared by the kernels; the kernel set puts this text in front of every
// .cu file it compiles (so the GPU, the nvcc check and the CPU emulation all see it).

// Every entry t < total this thread owns: a grid-stride loop, so any grid covers
// any size (the kernel set launches at most MAX_BLOCKS blocks).
#define FOR_EACH_ENTRY(t, total)                                                   \
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (total); \
         t += (long long)blockDim.x * gridDim.x)

// The position of entry t of an (n, rows, cols, c) array, the channel fastest.
struct Position {
    long long s;       // image
    int row, col, ch;
};

__device__ __forceinline__ Position unravel(long long t, int rows, int cols, int c)
{
    Position p;
    p.ch = (int)(t % c);     t /= c;
    p.col = (int)(t % cols); t /= cols;
    p.row = (int)(t % rows);
    p.s = t / rows;
    return p;
}

// Windows of size k moved by s: those that hold position p of the padded image are
// first_window(p, k, s) .. last_window(p, s, count), i.e. (p - k) / s < i <= p / s
// and 0 <= i < count. The same for rows and columns.
__device__ __forceinline__ int first_window(int p, int k, int s)
{
    return p >= k ? (p - k) / s + 1 : 0;
}

__device__ __forceinline__ int last_window(int p, int s, int count)
{
    return min(p / s, count - 1);
}
