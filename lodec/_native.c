/*
 * lodec._native: the native fast paths of stack verification.
 *
 * read_regular(dir_fd, name, max_bytes) reads one step file the way
 * lodec.app.verify.StepFiles.read_step does, in one call.
 *
 * A Decoder is built once per schema from its fields.  Decoder.decode(data)
 * returns the record (a dict, field name -> value) when `data` is certainly a
 * canonical vein of that schema, and None otherwise.  None never means
 * "refused": it means "ask the Python decoders", which decide and name the
 * problem.  So this code only has to be right about what it accepts; anything
 * unusual (non-ASCII text, whose NFC check needs the pinned Unicode tables; a
 * length or count over a limit; a self-fingerprint field) is left to Python.
 * Every length and count is checked against the limits and the bytes that
 * remain before anything is allocated, so any size of input is safe here.
 *
 * What it accepts is exactly what lodec.format.codec.decode_vein_reference
 * accepts for the same bytes (tests/test_fast_decoder.py checks that on
 * random schemas, records, mutations, fuzz seeds and arbitrary bytes, and
 * fuzz/native_asan.py runs the same comparison under AddressSanitizer and
 * UndefinedBehaviorSanitizer):
 *   - the 13-byte header equals the schema's;
 *   - the body is one map with definite lengths and shortest-form heads
 *     (RFC 8949 §4.2.1), keys unsigned integers strictly increasing, each a
 *     field id of the schema, every required field present;
 *   - each value has its field's type: text (ASCII only here), int in the
 *     64-bit signed range (major type 0 or 1), bool (0xf4/0xf5), byte string,
 *     an array of one scalar type, or a map text -> scalar whose encoded keys
 *     are strictly increasing bytewise;
 *   - no optional field is empty ("" / h'' / [] / {});
 *   - no bytes after the map.
 * No tags, floats, simple values other than true/false, or indefinite
 * lengths can pass: every head is read by read_head, which refuses them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 13

enum { K_SCALAR = 0, K_ARRAY = 1, K_MAP = 2 };
enum { S_STRING = 0, S_INT = 1, S_BOOL = 2, S_BYTES = 3 };

typedef struct {
    uint64_t id;
    PyObject *name; /* str, owned */
    int kind;
    int scalar;
    int required;
} FieldPlan;

typedef struct {
    PyObject_HEAD
    unsigned char header[HEADER_SIZE];
    Py_ssize_t longest;     /* the longest whole vein (header + body) this decoder takes */
    uint64_t max_text;      /* Limits.max_text_bytes: the longest text or byte string */
    uint64_t max_entries;   /* Limits.max_entries: the most entries of one array or map */
    Py_ssize_t nfields;
    FieldPlan *fields;      /* sorted by id, strictly increasing */
    /* Set by bind_vein: what Decoder.vein needs to build the Vein itself. */
    PyTypeObject *vein_type;
    PyObject *schema;
    PyObject *hasher;       /* the BLAKE3 state after the schema digest (copied per vein) */
    PyObject *slots[4];     /* the Vein type's descriptors: schema, record, data, fingerprint */
} Decoder;

static PyObject *str_copy, *str_update, *str_digest;

/* A cursor over the body; every read checks the bytes that remain, and the
 * limits, before anything is allocated (as the strict decoder does). */
typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    uint64_t max_text;
    uint64_t max_entries;
} Cursor;

/* Read one head: major type and argument in shortest form.  Returns 0 on
 * success; -1 for anything the canonical form refuses (tags, floats, simple
 * values other than false/true, reserved or indefinite lengths, non-shortest
 * arguments, truncation).  For major type 7 the argument is 20 or 21. */
static int
read_head(Cursor *c, int *major, uint64_t *arg)
{
    if (c->p >= c->end)
        return -1;
    unsigned char ib = *c->p++;
    int mt = ib >> 5, ai = ib & 31;
    if (mt == 6)
        return -1;
    if (mt == 7) {
        if (ib != 0xF4 && ib != 0xF5)
            return -1;
        *major = 7;
        *arg = (uint64_t)ai;
        return 0;
    }
    uint64_t v;
    if (ai < 24) {
        v = (uint64_t)ai;
    }
    else if (ai <= 27) {
        size_t size = (size_t)1 << (ai - 24);
        if ((size_t)(c->end - c->p) < size)
            return -1;
        v = 0;
        for (size_t i = 0; i < size; i++)
            v = (v << 8) | c->p[i];
        c->p += size;
        /* Shortest form: the value would not fit the next smaller head. */
        uint64_t floor = size == 1 ? 24 : ((uint64_t)1 << (4 * size));
        if (v < floor)
            return -1;
    }
    else {
        return -1; /* 28-30 reserved, 31 indefinite */
    }
    *major = mt;
    *arg = v;
    return 0;
}

/* A string length must be within the limit and fit in what remains. */
static inline int
fits(const Cursor *c, uint64_t n)
{
    return n <= c->max_text && n <= (uint64_t)(c->end - c->p);
}

/* A count must be within the limit and fit in what remains (each item takes >= 1 byte). */
static inline int
count_fits(const Cursor *c, uint64_t n)
{
    return n <= c->max_entries && n <= (uint64_t)(c->end - c->p);
}

/* The next n bytes, all ASCII, as a str; NULL with no exception set when
 * they are not all ASCII (left to Python's NFC-aware path); NULL with an
 * exception on memory errors. */
static PyObject *
ascii_text(Cursor *c, uint64_t n)
{
    const unsigned char *s = c->p;
    for (uint64_t i = 0; i < n; i++) {
        if (s[i] & 0x80)
            return NULL;
    }
    PyObject *text = PyUnicode_New((Py_ssize_t)n, 127);
    if (text == NULL)
        return NULL;
    memcpy(PyUnicode_DATA(text), s, (size_t)n);
    c->p += n;
    return text;
}

/* One scalar of type `scalar`, or NULL: with an exception set on memory
 * errors, without one for "not accepted here". */
static PyObject *
read_scalar(Cursor *c, int scalar)
{
    int major;
    uint64_t arg;
    if (read_head(c, &major, &arg) < 0)
        return NULL;
    switch (scalar) {
    case S_STRING:
        if (major != 3 || !fits(c, arg))
            return NULL;
        return ascii_text(c, arg);
    case S_INT:
        if (arg > (uint64_t)INT64_MAX)
            return NULL;
        if (major == 0)
            return PyLong_FromLongLong((long long)arg);
        if (major == 1)
            return PyLong_FromLongLong(-1 - (long long)arg);
        return NULL;
    case S_BOOL:
        if (major != 7)
            return NULL;
        return Py_NewRef(arg == 21 ? Py_True : Py_False);
    case S_BYTES: {
        if (major != 2 || !fits(c, arg))
            return NULL;
        PyObject *raw = PyBytes_FromStringAndSize((const char *)c->p, (Py_ssize_t)arg);
        if (raw != NULL)
            c->p += arg;
        return raw;
    }
    }
    return NULL;
}

static PyObject *
read_array(Cursor *c, int scalar)
{
    int major;
    uint64_t n;
    if (read_head(c, &major, &n) < 0 || major != 4 || !count_fits(c, n))
        return NULL;
    /* Grown item by item, not allocated for the declared count: a hostile count costs
     * no more memory than the items actually read (as in the strict decoder). */
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *item = read_scalar(c, scalar);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *
read_map(Cursor *c, int scalar)
{
    int major;
    uint64_t n;
    if (read_head(c, &major, &n) < 0 || major != 5 || !count_fits(c, n))
        return NULL;
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *kstart = c->p;
        uint64_t klen;
        if (read_head(c, &major, &klen) < 0 || major != 3 || !fits(c, klen))
            goto refuse;
        size_t enc_len = (size_t)(c->p - kstart) + (size_t)klen;
        /* Canonical order: each encoded key strictly after the previous one, bytewise. */
        if (prev != NULL) {
            size_t m = prev_len < enc_len ? prev_len : enc_len;
            int cmp = memcmp(prev, kstart, m);
            if (cmp > 0 || (cmp == 0 && prev_len >= enc_len))
                goto refuse;
        }
        prev = kstart;
        prev_len = enc_len;
        PyObject *key = ascii_text(c, klen);
        if (key == NULL)
            goto refuse;
        PyObject *value = read_scalar(c, scalar);
        if (value == NULL) {
            Py_DECREF(key);
            goto refuse;
        }
        int rc = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0)
            goto refuse;
    }
    return dict;
refuse:
    Py_DECREF(dict);
    return NULL;
}

static int
is_empty(PyObject *value)
{
    if (PyUnicode_CheckExact(value))
        return PyUnicode_GET_LENGTH(value) == 0;
    if (PyBytes_CheckExact(value))
        return PyBytes_GET_SIZE(value) == 0;
    if (PyList_CheckExact(value))
        return PyList_GET_SIZE(value) == 0;
    if (PyDict_CheckExact(value))
        return PyDict_GET_SIZE(value) == 0;
    return 0;
}

/* The record of `body`, or NULL (an exception set only on memory errors). */
static PyObject *
decode_body(Decoder *self, const unsigned char *body, Py_ssize_t size)
{
    Cursor c = {body, body + size, self->max_text, self->max_entries};
    int major;
    uint64_t n;
    if (read_head(&c, &major, &n) < 0 || major != 5 || !count_fits(&c, n))
        return NULL;
    PyObject *record = PyDict_New();
    if (record == NULL)
        return NULL;
    Py_ssize_t next = 0; /* the first field not yet passed */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t key;
        if (read_head(&c, &major, &key) < 0 || major != 0)
            goto refuse;
        /* Keys strictly increasing: every field before `key` is passed for good. */
        while (next < self->nfields && self->fields[next].id < key) {
            if (self->fields[next].required)
                goto refuse;
            next++;
        }
        if (next >= self->nfields || self->fields[next].id != key)
            goto refuse; /* unknown, duplicate or out of order */
        FieldPlan *f = &self->fields[next++];
        PyObject *value;
        if (f->kind == K_SCALAR)
            value = read_scalar(&c, f->scalar);
        else if (f->kind == K_ARRAY)
            value = read_array(&c, f->scalar);
        else
            value = read_map(&c, f->scalar);
        if (value == NULL)
            goto refuse;
        if (!f->required && is_empty(value)) {
            Py_DECREF(value);
            goto refuse;
        }
        int rc = PyDict_SetItem(record, f->name, value);
        Py_DECREF(value);
        if (rc < 0)
            goto refuse;
    }
    for (; next < self->nfields; next++) {
        if (self->fields[next].required)
            goto refuse;
    }
    if (c.p != c.end)
        goto refuse;
    return record;
refuse:
    Py_DECREF(record);
    return NULL;
}

PyDoc_STRVAR(decode_doc,
"decode(data: bytes) -> dict | None\n\n"
"The record of ``data`` (a whole vein: header + body) if it is certainly a\n"
"canonical vein of this decoder's schema; ``None`` otherwise, meaning \"ask\n"
"the Python decoders\" (never \"refused\"). Raises only MemoryError.");

static PyObject *
Decoder_decode(Decoder *self, PyObject *data)
{
    if (!PyBytes_CheckExact(data))
        Py_RETURN_NONE;
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(data);
    if (size < HEADER_SIZE || size > self->longest || memcmp(raw, self->header, HEADER_SIZE) != 0)
        Py_RETURN_NONE;
    PyObject *record = decode_body(self, raw + HEADER_SIZE, size - HEADER_SIZE);
    if (record == NULL) {
        if (PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError))
                return NULL;
            PyErr_Clear();
        }
        Py_RETURN_NONE;
    }
    return record;
}

PyDoc_STRVAR(vein_doc,
"vein(data: bytes) -> Vein | None\n\n"
"As ``decode``, but the whole ``Vein`` (after ``bind_vein``): its record, its\n"
"``data`` and its fingerprint ``blake3:<64 hex>``, the hasher's copy updated\n"
"with the body (docs/vein-format.md §7). Raises what the hasher raises, and\n"
"RuntimeError before ``bind_vein``.");

static const char HEX[] = "0123456789abcdef";

static PyObject *
Decoder_vein(Decoder *self, PyObject *data)
{
    if (self->vein_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind_vein was not called");
        return NULL;
    }
    PyObject *record = Decoder_decode(self, data);
    if (record == NULL || record == Py_None)
        return record;
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    PyObject *vein = NULL, *h = NULL, *body = NULL, *digest = NULL, *fp = NULL, *rc = NULL;
    h = PyObject_CallMethodNoArgs(self->hasher, str_copy);
    if (h == NULL)
        goto done;
    body = PyMemoryView_FromMemory(PyBytes_AS_STRING(data) + HEADER_SIZE, size - HEADER_SIZE, PyBUF_READ);
    if (body == NULL)
        goto done;
    rc = PyObject_CallMethodOneArg(h, str_update, body);
    if (rc == NULL)
        goto done;
    digest = PyObject_CallMethodNoArgs(h, str_digest);
    if (digest == NULL)
        goto done;
    if (!PyBytes_CheckExact(digest) || PyBytes_GET_SIZE(digest) != 32) {
        PyErr_SetString(PyExc_TypeError, "the hasher's digest is not 32 bytes");
        goto done;
    }
    fp = PyUnicode_New(7 + 64, 127);
    if (fp == NULL)
        goto done;
    {
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(fp);
        const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(digest);
        memcpy(out, "blake3:", 7);
        for (int i = 0; i < 32; i++) {
            out[7 + 2 * i] = (Py_UCS1)HEX[d[i] >> 4];
            out[8 + 2 * i] = (Py_UCS1)HEX[d[i] & 15];
        }
    }
    vein = self->vein_type->tp_alloc(self->vein_type, 0);
    if (vein == NULL)
        goto done;
    PyObject *values[4] = {self->schema, record, data, fp};
    for (int i = 0; i < 4; i++) {
        if (Py_TYPE(self->slots[i])->tp_descr_set(self->slots[i], vein, values[i]) < 0) {
            Py_CLEAR(vein);
            goto done;
        }
    }
done:
    Py_DECREF(record);
    Py_XDECREF(h);
    Py_XDECREF(body);
    Py_XDECREF(rc);
    Py_XDECREF(digest);
    Py_XDECREF(fp);
    return vein;
}

PyDoc_STRVAR(bind_vein_doc,
"bind_vein(vein_type, schema, hasher) -> None\n\n"
"Make ``vein`` build ``vein_type`` objects (a class with the slots schema,\n"
"record, data and fingerprint) for ``schema``, fingerprinting with copies of\n"
"``hasher`` (a blake3 object already updated with the schema digest).");

static PyObject *
Decoder_bind_vein(Decoder *self, PyObject *args)
{
    static const char *names[4] = {"schema", "record", "data", "fingerprint"};
    PyTypeObject *vein_type;
    PyObject *schema, *hasher;
    if (!PyArg_ParseTuple(args, "O!OO", &PyType_Type, &vein_type, &schema, &hasher))
        return NULL;
    PyObject *slots[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        slots[i] = PyObject_GetAttrString((PyObject *)vein_type, names[i]);
        if (slots[i] == NULL || Py_TYPE(slots[i])->tp_descr_set == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%s is not a settable slot of the vein type", names[i]);
            for (int j = 0; j <= i; j++)
                Py_XDECREF(slots[j]);
            return NULL;
        }
    }
    Py_XSETREF(self->vein_type, (PyTypeObject *)Py_NewRef(vein_type));
    Py_XSETREF(self->schema, Py_NewRef(schema));
    Py_XSETREF(self->hasher, Py_NewRef(hasher));
    for (int i = 0; i < 4; i++)
        Py_XSETREF(self->slots[i], slots[i]);
    Py_RETURN_NONE;
}

static void
Decoder_dealloc(Decoder *self)
{
    Py_XDECREF(self->vein_type);
    Py_XDECREF(self->schema);
    Py_XDECREF(self->hasher);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(self->slots[i]);
    if (self->fields != NULL) {
        for (Py_ssize_t i = 0; i < self->nfields; i++)
            Py_XDECREF(self->fields[i].name);
        PyMem_Free(self->fields);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Decoder(header, longest, max_text, max_entries, fields) */
static PyObject *
Decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"header", "longest", "max_text", "max_entries", "fields", NULL};
    Py_buffer header;
    Py_ssize_t longest;
    unsigned long long max_text, max_entries;
    PyObject *fields;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*nKKO!", kwlist, &header, &longest, &max_text, &max_entries,
                                     &PyTuple_Type, &fields))
        return NULL;
    if (header.len != HEADER_SIZE) {
        PyBuffer_Release(&header);
        PyErr_SetString(PyExc_ValueError, "header must be 13 bytes");
        return NULL;
    }
    Decoder *self = (Decoder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        PyBuffer_Release(&header);
        return NULL;
    }
    memcpy(self->header, header.buf, HEADER_SIZE);
    PyBuffer_Release(&header);
    self->longest = longest;
    self->max_text = max_text;
    self->max_entries = max_entries;
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    self->fields = PyMem_Calloc(n ? (size_t)n : 1, sizeof(FieldPlan));
    if (self->fields == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->nfields = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(fields, i);
        unsigned long long id;
        PyObject *name;
        int kind, scalar, required;
        if (!PyTuple_Check(item)
            || !PyArg_ParseTuple(item, "KUiip", &id, &name, &kind, &scalar, &required)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a field is (id, name, kind, scalar, required)");
            Py_DECREF(self);
            return NULL;
        }
        if (kind < K_SCALAR || kind > K_MAP || scalar < S_STRING || scalar > S_BYTES
            || (i > 0 && id <= self->fields[i - 1].id)) {
            PyErr_SetString(PyExc_ValueError, "fields must have known kinds and strictly increasing ids");
            Py_DECREF(self);
            return NULL;
        }
        self->fields[i].id = id;
        self->fields[i].name = Py_NewRef(name);
        self->fields[i].kind = kind;
        self->fields[i].scalar = scalar;
        self->fields[i].required = required;
    }
    return (PyObject *)self;
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)Decoder_decode, METH_O, decode_doc},
    {"vein", (PyCFunction)Decoder_vein, METH_O, vein_doc},
    {"bind_vein", (PyCFunction)Decoder_bind_vein, METH_VARARGS, bind_vein_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Decoder_doc,
"Decoder(header, longest, max_text, max_entries, fields): the native fast\n"
"path for one schema and one set of limits.\n\n"
"header: the schema's 13-byte vein header; longest: the longest vein taken\n"
"(header + body, bytes); max_text: the longest text or byte string (bytes);\n"
"max_entries: the most entries of one array or map (the record map\n"
"included); each is checked before anything is allocated; fields: (id, name, kind, scalar, required) per field,\n"
"ids strictly increasing; kind 0 scalar, 1 array, 2 map; scalar 0 string,\n"
"1 int, 2 bool, 3 bytes.");

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lodec._native.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Decoder_doc,
    .tp_methods = Decoder_methods,
    .tp_new = Decoder_new,
};

PyDoc_STRVAR(read_regular_doc,
"read_regular(dir_fd: int, name: str, max_bytes: int) -> bytes | None\n\n"
"The whole content of the regular file ``name`` in the folder open as\n"
"``dir_fd`` (openat(2) with O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, fstat(2), one\n"
"read(2)), if it is a regular file of at most ``max_bytes`` bytes that reads\n"
"whole in one read; ``None`` for anything else (absent, a link, a FIFO, a\n"
"folder, over the limit, a read error, a size that changed), meaning \"read it\n"
"the careful way\", which names the problem. Raises only MemoryError and,\n"
"for a name that is not valid UTF-8 text or holds NUL, ValueError.");

static PyObject *
read_regular(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read_regular(dir_fd: int, name: str, max_bytes: int)");
        return NULL;
    }
    long dir_fd_long = PyLong_AsLong(args[0]);
    if (dir_fd_long == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[2]);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    if (dir_fd_long < INT_MIN || dir_fd_long > INT_MAX || max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "dir_fd out of range or negative max_bytes");
        return NULL;
    }
    int dir_fd = (int)dir_fd_long;
    Py_ssize_t name_len;
    const char *name = PyUnicode_AsUTF8AndSize(args[1], &name_len);
    if (name == NULL)
        return NULL;
    if ((size_t)name_len != strlen(name)) {
        PyErr_SetString(PyExc_ValueError, "embedded NUL in a file name");
        return NULL;
    }
    int fd;
    struct stat st;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0
         && (unsigned long long)st.st_size <= (unsigned long long)max_bytes;
    if (fd >= 0 && !ok)
        close(fd);
    Py_END_ALLOW_THREADS
    if (!ok)
        Py_RETURN_NONE;
    Py_ssize_t size = (Py_ssize_t)st.st_size;
    /* One byte more than fstat said: a file that grew since reads longer, and is refused here. */
    PyObject *data = PyBytes_FromStringAndSize(NULL, size + 1);
    if (data == NULL) {
        close(fd);
        return NULL;
    }
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = read(fd, PyBytes_AS_STRING(data), (size_t)size + 1);
    close(fd);
    Py_END_ALLOW_THREADS
    if (n != size) {
        Py_DECREF(data);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&data, size) < 0)
        return NULL;
    return data;
}

static PyMethodDef module_methods[] = {
    {"read_regular", (PyCFunction)(void (*)(void))read_regular, METH_FASTCALL, read_regular_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lodec._native",
    .m_doc = "Native fast paths of stack verification; lodec.format.codec and lodec.files are the reference.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    str_copy = PyUnicode_InternFromString("copy");
    str_update = PyUnicode_InternFromString("update");
    str_digest = PyUnicode_InternFromString("digest");
    if (str_copy == NULL || str_update == NULL || str_digest == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
