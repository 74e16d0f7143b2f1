#include "CHDF5.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

// Keeps the most specific message of HDF5's error stack instead of letting the library print it.
static herr_t remember_error(unsigned n, const H5E_error2_t *err, void *client) {
    (void)client;
    if (n == 0) snprintf(last_error, sizeof last_error, "%s: %s", err->func_name ? err->func_name : "hdf5", err->desc ? err->desc : "");
    return 0;
}

static void capture(void) {
    last_error[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, remember_error, NULL);
    H5Eclear2(H5E_DEFAULT);
}

// The automatic error printer is per thread in thread-safe builds (Debian's), so every call
// turns it off for its own thread.
static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static hid_t native(chdf5_type type) {
    switch (type) {
    case CHDF5_U8: return H5T_NATIVE_UINT8;
    case CHDF5_I64: return H5T_NATIVE_INT64;
    case CHDF5_F32: return H5T_NATIVE_FLOAT;
    case CHDF5_F64: return H5T_NATIVE_DOUBLE;
    case CHDF5_U64: return H5T_NATIVE_UINT64;
    }
    return -1;
}

const char *chdf5_last_error(void) { return last_error; }

int64_t chdf5_file_create(const char *path) {
    quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) capture();
    return f;
}

int chdf5_file_close(int64_t file) {
    herr_t r = H5Fclose(file);
    if (r < 0) capture();
    return r;
}

int64_t chdf5_group_create(int64_t parent, const char *name) {
    quiet();
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) capture();
    return g;
}

int chdf5_group_close(int64_t group) {
    herr_t r = H5Gclose(group);
    if (r < 0) capture();
    return r;
}

int chdf5_dataset_write(int64_t parent, const char *name, chdf5_type type, int rank, const uint64_t *dims,
                        const void *data, int gzip_level) {
    quiet();
    if (rank < 1 || rank > 8) { snprintf(last_error, sizeof last_error, "rank %d outside 1...8", rank); return -1; }
    hsize_t shape[8], chunk[8];
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) { shape[i] = dims[i]; chunk[i] = dims[i]; total *= dims[i]; }
    hid_t space = H5Screate_simple(rank, shape, NULL);
    hid_t props = H5Pcreate(H5P_DATASET_CREATE);
    // Deflate needs chunks; one step (row) per chunk keeps random access by step cheap.
    if (gzip_level > 0 && total > 0) {
        chunk[0] = 1;
        H5Pset_chunk(props, rank, chunk);
        H5Pset_deflate(props, (unsigned)gzip_level);
    }
    hid_t set = H5Dcreate2(parent, name, native(type), space, H5P_DEFAULT, props, H5P_DEFAULT);
    herr_t r = set < 0 ? -1 : H5Dwrite(set, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (set < 0 || r < 0) capture();
    if (set >= 0) H5Dclose(set);
    H5Pclose(props);
    H5Sclose(space);
    return set < 0 ? -1 : r;
}

int chdf5_attribute_write(int64_t object, const char *name, chdf5_type type, uint64_t count, const void *data) {
    quiet();
    hsize_t n = count;
    hid_t space = count == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t attr = H5Acreate2(object, name, native(type), space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = attr < 0 ? -1 : H5Awrite(attr, native(type), data);
    if (attr < 0 || r < 0) capture();
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return attr < 0 ? -1 : r;
}

int chdf5_attribute_write_string(int64_t object, const char *name, const char *value) {
    quiet();
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = attr < 0 ? -1 : H5Awrite(attr, type, &value);
    if (attr < 0 || r < 0) capture();
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return attr < 0 ? -1 : r;
}
