// im2col and col2im on the GPU: the windows of an NHWC image as rows of a matrix,
// and the adjoint that folds a gradient of those rows back onto the image.
//
// Layout (the same as minicnn/ops/im2col.py):
//     x    (n, h, w, c)                  the image, channels last
//     col  (n, oh, ow, kh, kw, c)        col[s, i, j, a, b, ch] = x[s, i*sh + a - top, j*sw + b - left, ch]
// A cell outside the image reads as pad_value (0 for convolution).
//
// Every kernel here is a grid-stride loop over one output array: thread t handles
// entry t, t + (all threads), ... so any launch size covers any array. The channel
// is the fastest index of every array, so neighbouring threads touch neighbouring
// addresses (coalesced loads and stores). No shared memory, no atomics: each
// output entry is written by exactly one thread, which makes the result independent
// of the order threads run in (and lets the CPU emulation run them one by one).

template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ col,
                       int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                       int top, int left, int oh, int ow, T pad_value)
{
    const long long total = (long long)n * oh * ow * kh * kw * c;
    FOR_EACH_ENTRY(t, total) {
        long long rest = t;
        const int ch = (int)(rest % c);  rest /= c;
        const int b = (int)(rest % kw);  rest /= kw;
        const int a = (int)(rest % kh);  rest /= kh;
        const int j = (int)(rest % ow);  rest /= ow;
        const int i = (int)(rest % oh);  rest /= oh;
        const long long s = rest;
        const int r = i * sh + a - top;      // the image row and column under this cell
        const int q = j * sw + b - left;
        col[t] = (r >= 0 && r < h && q >= 0 && q < w)
                     ? x[((s * h + r) * w + q) * c + ch]
                     : pad_value;
    }
}

// col2im in gather form: one thread per input pixel (and channel) adds up the
// window entries that were cut from it, instead of every window entry adding
// itself to its pixel (which would need atomics, and would sum in a random order).
//
// Pixel (r, q) sits at (rp, qp) = (r + top, q + left) in the padded image. Window i
// covers padded rows i*sh .. i*sh + kh - 1, so the windows holding row rp are
//     i > (rp - kh) / sh   and   i <= rp / sh     (and 0 <= i < oh)
// (first_window and last_window in common.cuh), at window row a = rp - i*sh; the
// same for columns. Summing over i, then j, in
// increasing order adds the terms in the order the CPU loop does.
template <typename T>
__global__ void col2im(const T* __restrict__ dcol, T* __restrict__ dx,
                       int n, int h, int w, int c, int kh, int kw, int sh, int sw,
                       int top, int left, int oh, int ow)
{
    const long long total = (long long)n * h * w * c;
    FOR_EACH_ENTRY(t, total) {
        const Position p = unravel(t, h, w, c);
        const int rp = p.row + top, qp = p.col + left;
        T sum = 0;
        for (int i = first_window(rp, kh, sh); i <= last_window(rp, sh, oh); ++i) {
            const int a = rp - i * sh;
            for (int j = first_window(qp, kw, sw); j <= last_window(qp, sw, ow); ++j) {
                const int b = qp - j * sw;
                sum += dcol[((((p.s * oh + i) * ow + j) * kh + a) * kw + b) * c + p.ch];
            }
        }
        dx[t] = sum;
    }
}
