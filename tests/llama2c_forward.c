/* An independent reader of llama2.c float32 checkpoints (v0 legacy and v1), written for zth's tests.
 *
 * Usage: llama2c_forward MODEL.bin TOKEN [TOKEN ...]
 * Prints the header as one line, then the logits after the last token, one per line. The
 * forward pass is the plain Llama 2 computation over the tokens at positions 0, 1, 2, ...:
 * RMSNorm (eps 1e-5), rotary embeddings on interleaved pairs (theta 10000), grouped-query
 * attention (query head h reads key/value head h / (n_heads / n_kv_heads)), SwiGLU.
 * Build: cc -O2 -o llama2c_forward llama2c_forward.c -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; } Config;

static void die(const char *msg) { fprintf(stderr, "llama2c_forward: %s\n", msg); exit(1); }

static void rmsnorm(float *out, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / n + 1e-5f);
    for (int i = 0; i < n; i++) out[i] = x[i] * ss * w[i];
}

/* out[rows] = W[rows x cols] @ x[cols], W row-major as torch stores nn.Linear weights */
static void matvec(float *out, const float *x, const float *w, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        float s = 0.0f;
        for (int j = 0; j < cols; j++) s += w[(size_t)i * cols + j] * x[j];
        out[i] = s;
    }
}

static void rotate(float *v, int n, int head_size, int pos) {
    for (int i = 0; i < n; i += 2) {
        float freq = 1.0f / powf(10000.0f, (float)(i % head_size) / (float)head_size);
        float c = cosf(pos * freq), s = sinf(pos * freq), a = v[i], b = v[i + 1];
        v[i] = a * c - b * s;
        v[i + 1] = a * s + b * c;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) die("usage: llama2c_forward MODEL.bin TOKEN [TOKEN ...]");
    FILE *f = fopen(argv[1], "rb");
    if (!f) die("cannot open the model file");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(size);
    if (!buf || fread(buf, 1, size, f) != (size_t)size) die("cannot read the model file");
    fclose(f);

    Config c;
    uint32_t magic;
    int version, shared;
    long off;
    memcpy(&magic, buf, 4);
    if (magic == 0x616b3432) {
        memcpy(&version, buf + 4, 4);
        if (version != 1) die("unsupported version");
        memcpy(&c, buf + 8, sizeof(Config));
        shared = buf[36];
        off = 256;
    } else {
        version = 0;
        memcpy(&c, buf, sizeof(Config));
        shared = c.vocab_size > 0;
        c.vocab_size = abs(c.vocab_size);
        off = sizeof(Config);
    }
    printf("version %d dim %d hidden_dim %d n_layers %d n_heads %d n_kv_heads %d vocab_size %d seq_len %d "
           "shared %d\n", version, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
           c.seq_len, shared);

    int D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size, hs = D / c.n_heads;
    int kvd = c.n_kv_heads * hs, rep = c.n_heads / c.n_kv_heads;
    float *p = (float *)(buf + off);
    float *emb, *att_norm, *ffn_norm, *final_norm, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *cls;
#define TAKE(ptr, n) do { ptr = p; p += (size_t)(n); } while (0)
    if (version == 0) {
        TAKE(emb, V * D); TAKE(att_norm, L * D); TAKE(wq, L * D * D); TAKE(wk, L * D * kvd);
        TAKE(wv, L * D * kvd); TAKE(wo, L * D * D); TAKE(ffn_norm, L * D); TAKE(w1, L * D * H);
        TAKE(w2, L * H * D); TAKE(w3, L * D * H); TAKE(final_norm, D);
        p += (size_t)c.seq_len * hs;  /* the cos and sin tables, seq_len x hs/2 each: recomputed below */
    } else {
        TAKE(att_norm, L * D); TAKE(ffn_norm, L * D); TAKE(final_norm, D); TAKE(emb, V * D);
        TAKE(wq, L * D * D); TAKE(wk, L * D * kvd); TAKE(wv, L * D * kvd); TAKE(wo, L * D * D);
        TAKE(w1, L * D * H); TAKE(w2, L * H * D); TAKE(w3, L * D * H);
    }
    if (shared) cls = emb; else TAKE(cls, V * D);
    if ((char *)p != buf + size) die("file size does not match the header");

    int T = argc - 2;
    if (T > c.seq_len) die("more tokens than seq_len");
    float *x = calloc(D, 4), *xb = calloc(D, 4), *xb2 = calloc(D, 4), *q = calloc(D, 4);
    float *hb = calloc(H, 4), *hb2 = calloc(H, 4), *att = calloc(T, 4), *logits = calloc(V, 4);
    float *kc = calloc((size_t)L * T * kvd, 4), *vc = calloc((size_t)L * T * kvd, 4);
    for (int pos = 0; pos < T; pos++) {
        int tok = atoi(argv[2 + pos]);
        if (tok < 0 || tok >= V) die("token out of range");
        memcpy(x, emb + (size_t)tok * D, D * 4);
        for (int l = 0; l < L; l++) {
            float *k = kc + ((size_t)l * T + pos) * kvd, *v = vc + ((size_t)l * T + pos) * kvd;
            rmsnorm(xb, x, att_norm + (size_t)l * D, D);
            matvec(q, xb, wq + (size_t)l * D * D, D, D);
            matvec(k, xb, wk + (size_t)l * D * kvd, kvd, D);
            matvec(v, xb, wv + (size_t)l * D * kvd, kvd, D);
            rotate(q, D, hs, pos);
            rotate(k, kvd, hs, pos);
            for (int h = 0; h < c.n_heads; h++) {
                float *qh = q + h * hs, mx = -INFINITY, sum = 0.0f;
                int kh = h / rep;
                for (int t = 0; t <= pos; t++) {
                    float *kt = kc + ((size_t)l * T + t) * kvd + kh * hs, s = 0.0f;
                    for (int i = 0; i < hs; i++) s += qh[i] * kt[i];
                    att[t] = s / sqrtf((float)hs);
                    if (att[t] > mx) mx = att[t];
                }
                for (int t = 0; t <= pos; t++) { att[t] = expf(att[t] - mx); sum += att[t]; }
                float *out = xb + h * hs;
                memset(out, 0, hs * 4);
                for (int t = 0; t <= pos; t++) {
                    float *vt = vc + ((size_t)l * T + t) * kvd + kh * hs, a = att[t] / sum;
                    for (int i = 0; i < hs; i++) out[i] += a * vt[i];
                }
            }
            matvec(xb2, xb, wo + (size_t)l * D * D, D, D);
            for (int i = 0; i < D; i++) x[i] += xb2[i];
            rmsnorm(xb, x, ffn_norm + (size_t)l * D, D);
            matvec(hb, xb, w1 + (size_t)l * D * H, H, D);
            matvec(hb2, xb, w3 + (size_t)l * D * H, H, D);
            for (int i = 0; i < H; i++) hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
            matvec(xb2, hb, w2 + (size_t)l * H * D, D, H);
            for (int i = 0; i < D; i++) x[i] += xb2[i];
        }
    }
    rmsnorm(xb, x, final_norm, D);
    matvec(logits, xb, cls, V, D);
    for (int i = 0; i < V; i++) printf("%.9g\n", logits[i]);
    return 0;
}
