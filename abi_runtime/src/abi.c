/*
 * abi.c: the module's exports, the only entry points a host calls.
 *
 *   _start()              initialise (optional: every export initialises
 *                         lazily, for hosts that never call it)
 *   malloc_buffer(n)      a buffer of n bytes for the request; 0 on failure
 *   free_buffer(p)        free a buffer from malloc_buffer; tolerates 0,
 *                         the output pointer, unknown pointers, double frees
 *   pred()                run the model on the last allocated buffer;
 *                         0 ok, 1 error ({"error": ...} response)
 *   get_out_loc()         the response text (NUL-terminated), valid until
 *   get_out_len()         the next pred(); its length without the NUL
 *
 * The model itself is a plan appended to this module after linking: the
 * two placeholders below get their bodies replaced by the packager.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "memplan.h"
#include "request.h"
#include "response.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* Largest request buffer accepted (linear memory is 4 GiB at most). */
#define MAX_REQUEST_BYTES 0x7fff0000u

/* ---- placeholders, replaced after linking ------------------------------ */

/* Bytes of the embedded plan. The volatile keeps the compiler from
   treating the (patched) result as a known constant. */
__attribute__((noinline, used, weak, export_name("wx_blob_size")))
uint32_t wx_blob_size(void)
{
    static volatile uint32_t unpatched = 0;
    return unpatched;
}

/* Copy len bytes of the plan from offset off to dst. The body writes dst
   so that callers cannot assume the buffer untouched. */
__attribute__((noinline, used, weak, export_name("wx_blob_read")))
void wx_blob_read(uint8_t *dst, uint32_t off, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        dst[i] = (uint8_t)(off + i);
}

/* ---- benchmark builds only (-DWX_BENCH) --------------------------------- */

#ifdef WX_BENCH
/* pred() runs the graph this many times, so that a host can time the
   inference alone: (T(r) - T(1)) / (r - 1). Never in the shipped runtime. */
static int32_t bench_repeat = 1;

EXPORT("wx_bench_repeat")
void wx_bench_repeat(int32_t r)
{
    bench_repeat = r > 1 ? r : 1;
}

/* Run the graph r - 1 extra times, dropping the outputs of each run. */
static Status bench_runs(const Model *m, Tensor *vals, Err *err)
{
    for (int32_t r = 1; r < bench_repeat; r++) {
        Status st = graph_run(m, 0, vals, err);
        if (st != ST_OK)
            return st;
        for (int32_t i = 0; i < m->graphs[0].n_outputs; i++) {
            int32_t v = m->graphs[0].outputs[i];
            if (m->values[v].kind == VK_ACTIVATION)
                tensor_release(&vals[v]);
        }
    }
    return ST_OK;
}
#endif

/* ---- state ------------------------------------------------------------ */

typedef struct {
    void *ptr;
    uint32_t len;
} Request;

static struct {
    int initialised;
    Status load_status;
    Err load_err;
    Model model;
    Request *buffers; /* live buffers from malloc_buffer */
    int32_t n_buffers, cap_buffers;
    void *current;    /* the most recent live buffer: the request */
    uint32_t current_len;
    Buf out;          /* the last response */
} S;

/* The response used when even the error text cannot be allocated. */
static char OOM_RESPONSE[] = "{\"error\":\"runtime: out of memory\"}";
/* The "response" before the first pred(). */
static char NO_RESPONSE[] = "";

extern void __wasm_call_ctors(void);

/* Run C constructors and load the plan, once. */
static void runtime_init(void)
{
    if (S.initialised)
        return;
    S.initialised = 1;
    __wasm_call_ctors();

    uint32_t size = wx_blob_size();
    if (size == 0) {
        S.load_status = fail(&S.load_err, ST_BAD_FORMAT, "model: no plan "
                             "embedded (this is the bare runtime; package a "
                             "model with wasmexport)");
        return;
    }
    /* exact pages, not malloc: the plan (weights) is read in place for the
       life of the instance, never freed */
    uint8_t *blob = pages_alloc(size);
    if (!blob) {
        S.load_status = fail(&S.load_err, ST_OOM, "model: out of memory "
                             "loading a %u-byte plan", size);
        return;
    }
    wx_blob_read(blob, 0, size);
    S.load_status = model_load(&S.model, blob, size, &S.load_err);
    S.model.blob_in_pages = 1;
}

EXPORT("_start")
void wx_start(void)
{
    runtime_init();
}

EXPORT("malloc_buffer")
int32_t malloc_buffer(int32_t len)
{
    runtime_init();
    if (len <= 0 || (uint32_t)len > MAX_REQUEST_BYTES)
        return 0;
    if (S.n_buffers == S.cap_buffers) {
        int32_t cap = S.cap_buffers ? 2 * S.cap_buffers : 8;
        Request *b = realloc(S.buffers, sizeof *b * (size_t)cap);
        if (!b)
            return 0;
        S.buffers = b;
        S.cap_buffers = cap;
    }
    void *p = malloc((size_t)len);
    if (!p)
        return 0;
    S.buffers[S.n_buffers++] = (Request){p, (uint32_t)len};
    S.current = p;
    S.current_len = (uint32_t)len;
    return (int32_t)(intptr_t)p;
}

EXPORT("free_buffer")
void free_buffer(int32_t ptr)
{
    runtime_init();
    void *p = (void *)(intptr_t)ptr;
    for (int32_t i = 0; p && i < S.n_buffers; i++) {
        if (S.buffers[i].ptr != p)
            continue;
        free(p);
        S.buffers[i] = S.buffers[--S.n_buffers];
        if (S.current == p) {
            S.current = NULL;
            S.current_len = 0;
        }
        return;
    }
    /* 0, the output, unknown pointers and second frees: nothing to do */
}

/* Answer the request in the current buffer into S.out; 0 ok, 1 error. */
static int answer(void)
{
    Err err = {{0}};
    const Model *m = &S.model;
    if (S.load_status != ST_OK) {
        response_error(&S.out, S.load_err.msg);
        return 1;
    }
    if (!S.current) {
        response_error(&S.out, "request: no request buffer (allocate one with "
                       "malloc_buffer and write the JSON request into it)");
        return 1;
    }
    /* the text ends at the first NUL or at the end of the buffer */
    const char *text = S.current;
    const char *nul = memchr(text, 0, S.current_len);
    size_t len = nul ? (size_t)(nul - text) : S.current_len;

    Tensor *vals = calloc((size_t)m->n_values + 1, sizeof(Tensor));
    Tensor *inputs = calloc((size_t)m->graphs[0].n_inputs + 1, sizeof(Tensor));
    Tensor *outputs = calloc((size_t)m->graphs[0].n_outputs + 1, sizeof(Tensor));
    RequestOptions opt;
    Status st = vals && inputs && outputs ? ST_OK
              : fail(&err, ST_OOM, "runtime: out of memory");
    if (st == ST_OK)
        st = request_parse(m, text, len, inputs, &opt, &err);
    if (st == ST_OK) {
        for (int32_t i = 0; i < m->graphs[0].n_inputs; i++)
            vals[m->graphs[0].inputs[i]] = inputs[i];
#ifdef WX_BENCH
        st = bench_runs(m, vals, &err);
        if (st == ST_OK)
#endif
        st = graph_run(m, 0, vals, &err);
    }
    if (st == ST_OK) {
        for (int32_t i = 0; i < m->graphs[0].n_outputs; i++)
            outputs[i] = vals[m->graphs[0].outputs[i]];
        response_write(m, outputs, opt.raw_output, &S.out);
    }
    if (st != ST_OK)
        response_error(&S.out, err.msg);

    /* release inputs and outputs; constants are borrowed */
    for (int32_t v = 0; vals && v < m->n_values; v++)
        if (m->values[v].kind != VK_CONSTANT)
            tensor_release(&vals[v]);
    free(vals);
    free(inputs);
    free(outputs);
    /* the response holds copies: the request's strings can go */
    str_arena_reset();
    return st == ST_OK ? 0 : 1;
}

EXPORT("pred")
int32_t pred(void)
{
    runtime_init();
    /* the previous response is dropped; its memory is reused */
    buf_reset(&S.out);
    int rc = answer();
    if (S.out.oom) {
        /* a large response could not be built: free it, report briefly */
        buf_free(&S.out);
        response_error(&S.out, "runtime: out of memory writing the response");
        if (S.out.oom)
            return 1;
        rc = 1;
    }
    return rc;
}

/* The current response text: the last one, or a fixed text. */
static const char *response_text(size_t *len)
{
    if (S.out.oom) {
        *len = sizeof OOM_RESPONSE - 1;
        return OOM_RESPONSE;
    }
    if (!S.out.data) {
        *len = 0;
        return NO_RESPONSE;
    }
    *len = S.out.len;
    return S.out.data;
}

EXPORT("get_out_loc")
int32_t get_out_loc(void)
{
    size_t len;
    runtime_init();
    return (int32_t)(intptr_t)response_text(&len);
}

EXPORT("get_out_len")
int32_t get_out_len(void)
{
    size_t len;
    runtime_init();
    response_text(&len);
    return (int32_t)len;
}
