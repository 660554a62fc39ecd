// Element-wise kernels: the bias + activation epilogue of Conv2D and Dense, the
// relu/tanh gradient, and Adam's update. Each replaces several CuPy passes (and
// their temporaries) by one pass over flat arrays, one thread per element in a
// grid-stride loop.
//
// The backend compiles these with --fmad=false: a*b + c is then rounded twice, as
// NumPy rounds it, instead of being fused into one FMA; so Adam's step and the
// epilogue's bias add give the same bits as on the CPU -- for normal numbers: CuPy
// adds -ftz=true, so float32 subnormals (below 1.2e-38) count as zero here.

// kind: 0 linear, 1 relu, 2 tanh (LINEAR, RELU, TANH in the Python kernel sets)
__device__ __forceinline__ float activate(float v, int kind)
{
    if (kind == 1) return v < 0.0f ? 0.0f : v;   // NaN passes through, as np.maximum
    if (kind == 2) return tanhf(v);
    return v;
}

__device__ __forceinline__ double activate(double v, int kind)
{
    if (kind == 1) return v < 0.0 ? 0.0 : v;
    if (kind == 2) return tanh(v);
    return v;
}

// z = activation(z + bias) in place. bias holds m values (a multiple of the
// channel count, the channel axis last) and bias[t % m] is element t's; m == 0
// means no bias (nothing is added: -0.0 + 0 would turn into +0.0).
template <typename T>
__global__ void bias_activation(T* __restrict__ z, const T* __restrict__ bias,
                                long long size, int m, int kind)
{
    FOR_EACH_ENTRY(t, size) {
        const T v = m > 0 ? z[t] + bias[t % m] : z[t];
        z[t] = activate(v, kind);
    }
}

// dz = dy * activation'(z), from the activation's output `saved`:
// relu' = [saved > 0], tanh' = 1 - saved^2.
template <typename T>
__global__ void activation_gradient(const T* __restrict__ dy, const T* __restrict__ saved,
                                    T* __restrict__ dz, long long size, int kind)
{
    FOR_EACH_ENTRY(t, size) {
        const T s = saved[t];
        dz[t] = kind == 1 ? (s > 0 ? dy[t] : (T)0) : dy[t] * ((T)1 - s * s);
    }
}

__device__ __forceinline__ float square_root(float v) { return sqrtf(v); }
__device__ __forceinline__ double square_root(double v) { return sqrt(v); }

// Keras's Adam step, in place, with the operations in the order of
// optimizers.Adam._update on NumPy:
//     m += (1 - beta_1) * (g - m);  v += (1 - beta_2) * (g*g - v)
//     w -= alpha * m / (sqrt(v) + epsilon)
template <typename T>
__global__ void adam_update(T* __restrict__ w, const T* __restrict__ g,
                            T* __restrict__ m, T* __restrict__ v, long long size,
                            T one_minus_beta_1, T one_minus_beta_2, T alpha, T epsilon)
{
    FOR_EACH_ENTRY(t, size) {
        const T gi = g[t];
        const T mi = m[t] + one_minus_beta_1 * (gi - m[t]);
        const T vi = v[t] + one_minus_beta_2 * (gi * gi - v[t]);
        m[t] = mi;
        v[t] = vi;
        w[t] -= alpha * mi / (square_root(vi) + epsilon);
    }
}
