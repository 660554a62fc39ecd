// Max, min and average pooling on the GPU, forward and backward, NHWC.
//
// A window of output (i, j) starts at image row r0 = i*sh - top and column
// q0 = j*sw - left and spans kh x kw cells; cells outside the image are padding.
// Forward: one thread per output entry. Backward: one thread per *input* entry
// (gather form), which adds the gradients of every window covering its pixel, so
// no two threads write one address and no atomics are needed. The windows covering
// pixel (r, q), at (rp, qp) = (r + top, q + left) in the padded image, are
//     (rp - kh) / sh < i <= rp / sh      (and 0 <= i < oh), likewise for j;
// they are visited in increasing (i, j), the order the CPU loop adds them in
// (first_window and last_window in common.cuh).
//
// The same grid-stride loops and index order as im2col.cu: channel fastest.

// Max (take_max != 0) or min over each window's real cells, and where the winner
// is, as the pixel number r*w + q (or -1 for a padding cell), for the backward pass.
// Rules, the same as NumPy's argmax over the padded window and as Keras:
// - ties go to the first extreme cell in row-major order (strict comparison);
// - a NaN wins, and the first NaN stays (v != v is true only for NaN);
// - padding reads as `init` (-inf for max, +inf for min) and comes first, so a
//   window whose real cells all equal init keeps its first cell: a padding cell
//   (winner -1, the gradient is dropped) when the window starts on padding.
template <typename T>
__global__ void extreme_pool_forward(const T* __restrict__ x, T* __restrict__ y,
                                     int* __restrict__ winner,
                                     int n, int h, int w, int c, int kh, int kw,
                                     int sh, int sw, int top, int left, int oh, int ow,
                                     int take_max, T init)
{
    const long long total = (long long)n * oh * ow * c;
    FOR_EACH_ENTRY(t, total) {
        const Position o = unravel(t, oh, ow, c);
        const long long s = o.s;
        const int i = o.row, j = o.col, ch = o.ch;
        const int r0 = i * sh - top, q0 = j * sw - left;
        T best = init;
        int code = (r0 >= 0 && q0 >= 0) ? r0 * w + q0 : -1;
        for (int r = max(r0, 0); r < min(r0 + kh, h); ++r) {
            for (int q = max(q0, 0); q < min(q0 + kw, w); ++q) {
                const T v = x[((s * h + r) * w + q) * c + ch];
                const bool better = take_max ? (v > best) : (v < best);
                if (better || (v != v && best == best)) {
                    best = v;
                    code = r * w + q;
                }
            }
        }
        y[t] = best;
        winner[t] = code;
    }
}

// Each pixel receives the dy of every window it won, summed.
template <typename T>
__global__ void extreme_pool_backward(const T* __restrict__ dy, const int* __restrict__ winner,
                                      T* __restrict__ dx,
                                      int n, int h, int w, int c, int kh, int kw,
                                      int sh, int sw, int top, int left, int oh, int ow)
{
    const long long total = (long long)n * h * w * c;
    FOR_EACH_ENTRY(t, total) {
        const Position p = unravel(t, h, w, c);
        const long long s = p.s;
        const int r = p.row, q = p.col, ch = p.ch;
        const int rp = r + top, qp = q + left, code = r * w + q;
        T sum = 0;
        for (int i = first_window(rp, kh, sh); i <= last_window(rp, sh, oh); ++i) {
            for (int j = first_window(qp, kw, sw); j <= last_window(qp, sw, ow); ++j) {
                const long long o = ((s * oh + i) * ow + j) * c + ch;
                if (winner[o] == code)
                    sum += dy[o];
            }
        }
        dx[t] = sum;
    }
}

// Mean of each window's real (unpadded) cells, as Keras counts them. The sum is
// kept in T and scaled in double, exactly like the numba loop, so both backends
// give the same bits.
template <typename T>
__global__ void avg_pool_forward(const T* __restrict__ x, T* __restrict__ y,
                                 int n, int h, int w, int c, int kh, int kw,
                                 int sh, int sw, int top, int left, int oh, int ow)
{
    const long long total = (long long)n * oh * ow * c;
    FOR_EACH_ENTRY(t, total) {
        const Position o = unravel(t, oh, ow, c);
        const long long s = o.s;
        const int i = o.row, j = o.col, ch = o.ch;
        const int r0 = max(i * sh - top, 0), r1 = min(i * sh - top + kh, h);
        const int q0 = max(j * sw - left, 0), q1 = min(j * sw - left + kw, w);
        // column by column, each column's rows first: the numba kernel's order
        T sum = 0;
        for (int q = q0; q < q1; ++q) {
            T column = 0;
            for (int r = r0; r < r1; ++r)
                column += x[((s * h + r) * w + q) * c + ch];
            sum += column;
        }
        y[t] = (T)((double)sum * (1.0 / ((r1 - r0) * (q1 - q0))));
    }
}

// Every real cell of a window receives dy / (the window's number of real cells).
template <typename T>
__global__ void avg_pool_backward(const T* __restrict__ dy, T* __restrict__ dx,
                                  int n, int h, int w, int c, int kh, int kw,
                                  int sh, int sw, int top, int left, int oh, int ow)
{
    const long long total = (long long)n * h * w * c;
    FOR_EACH_ENTRY(t, total) {
        const Position p = unravel(t, h, w, c);
        const long long s = p.s;
        const int r = p.row, q = p.col, ch = p.ch;
        const int rp = r + top, qp = q + left;
        T sum = 0;
        for (int i = first_window(rp, kh, sh); i <= last_window(rp, sh, oh); ++i) {
            const int rows = min(i * sh - top + kh, h) - max(i * sh - top, 0);
            for (int j = first_window(qp, kw, sw); j <= last_window(qp, sw, ow); ++j) {
                const int cols = min(j * sw - left + kw, w) - max(j * sw - left, 0);
                const double scale = 1.0 / (rows * cols);
                sum = (T)((double)sum + (double)dy[((s * oh + i) * ow + j) * c + ch] * scale);
            }
        }
        dx[t] = sum;
    }
}
