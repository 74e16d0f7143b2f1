// CMuJoCo: the MuJoCo 4 C API plus a few C helpers for things Swift cannot call
// comfortably (variadic/macro-heavy OSMesa set-up, fixed-size C arrays in structs).
#ifndef CMUJOCO_H
#define CMUJOCO_H

#include <mujoco/mujoco.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Compile MJCF text into a model (mj_parseXMLString + mj_compile). Returns NULL and writes
/// a message into `error` on failure. The caller owns the model (mj_deleteModel).
mjModel* cmj_compile_xml_string(const char* xml, char* error, int error_size);

/// Opaque off-screen renderer: an OSMesa context with its own 800x800 (or larger) RGBA
/// buffer, MuJoCo's mjvScene/mjvOption/mjrContext for one model.
///
/// Threading rule: OSMesa contexts are current per thread. Every call below makes this
/// renderer's context current on the calling thread first, so a renderer may move between
/// threads, but it must never be used from two threads at the same time, and no other GL
/// work may interleave on the same thread between make-current and read-back.
typedef struct cmj_renderer cmj_renderer;

/// Create a renderer for `model` whose images are at most max_width x max_height
/// (the model's <visual><global offwidth/offheight> must be at least that big).
/// Returns NULL and writes a message into `error` on failure.
cmj_renderer* cmj_renderer_create(const mjModel* model, int max_width, int max_height,
                                  char* error, int error_size);
void cmj_renderer_destroy(cmj_renderer* renderer);

/// fast = 1 turns shadows, reflections and skybox off (~30x faster on llvmpipe).
void cmj_renderer_set_fast(cmj_renderer* renderer, int fast);

/// Render fixed camera `camera_id` (or the model's free camera if < 0) into `rgb`
/// (width*height*3 bytes, rows top-down). Returns 0 on success.
int cmj_renderer_render(cmj_renderer* renderer, const mjModel* model, mjData* data,
                        int camera_id, int width, int height, unsigned char* rgb);

/// The GL renderer string (e.g. "llvmpipe ..."), for logs and benchmarks.
/* As cmj_renderer_render, plus metric depth along the camera axis (metres, float per pixel,
   rows top-down) when depth is not NULL; rgb may be NULL. */
int cmj_renderer_render_rgbd(cmj_renderer* renderer, const mjModel* model, mjData* data,
                             int camera_id, int width, int height, unsigned char* rgb, float* depth);
const char* cmj_renderer_gl_info(cmj_renderer* renderer);

#ifdef __cplusplus
}
#endif

#endif
