#include <pthread.h>
#include "CMuJoCo.h"

#include <GL/osmesa.h>
#include <GL/gl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mjModel* cmj_compile_xml_string(const char* xml, char* error, int error_size) {
  if (error && error_size > 0) error[0] = 0;
  mjSpec* spec = mj_parseXMLString(xml, NULL, error, error_size);
  if (!spec) return NULL;
  mjModel* model = mj_compile(spec, NULL);
  if (!model && error && error_size > 0) {
    const char* message = mjs_getError(spec);
    snprintf(error, (size_t)error_size, "%s", message ? message : "mj_compile failed");
  }
  mj_deleteSpec(spec);
  return model;
}

struct cmj_renderer {
  OSMesaContext gl;
  unsigned char* buffer;
  int buffer_width, buffer_height;
  mjvScene scene;
  mjvOption option;
  mjvCamera camera;
  mjrContext context;
  unsigned char* scratch;
  int scratch_size;
};

// OSMesa binds a context to the calling thread. Renderers are used from many threads
// (Swift tasks hop threads, tests run in parallel), and a context left current on one
// thread while another thread uses or frees it hangs or crashes llvmpipe. So every GL entry
// point below holds one process-wide lock and unbinds the context before releasing it.
static pthread_mutex_t gl_lock = PTHREAD_MUTEX_INITIALIZER;
static void release_current(void) { OSMesaMakeCurrent(NULL, NULL, 0, 0, 0); }

static int make_current(cmj_renderer* r) {
  return OSMesaMakeCurrent(r->gl, r->buffer, GL_UNSIGNED_BYTE, r->buffer_width,
                           r->buffer_height) ? 0 : -1;
}

cmj_renderer* cmj_renderer_create(const mjModel* model, int max_width, int max_height,
                                  char* error, int error_size) {
  if (error && error_size > 0) error[0] = 0;
  cmj_renderer* r = (cmj_renderer*)calloc(1, sizeof(cmj_renderer));
  if (!r) return NULL;
  r->buffer_width = max_width > 800 ? max_width : 800;
  r->buffer_height = max_height > 800 ? max_height : 800;
  pthread_mutex_lock(&gl_lock);
  r->gl = OSMesaCreateContextExt(OSMESA_RGBA, 24, 8, 8, NULL);
  if (!r->gl) {
    if (error) snprintf(error, (size_t)error_size, "OSMesaCreateContextExt failed");
    free(r);
    pthread_mutex_unlock(&gl_lock);
    return NULL;
  }
  r->buffer = (unsigned char*)calloc((size_t)r->buffer_width * r->buffer_height * 4, 1);
  if (!r->buffer || make_current(r) != 0) {
    if (error) snprintf(error, (size_t)error_size, "OSMesaMakeCurrent failed");
    release_current();
    OSMesaDestroyContext(r->gl);
    free(r->buffer);
    free(r);
    pthread_mutex_unlock(&gl_lock);
    return NULL;
  }
  mjv_defaultScene(&r->scene);
  mjv_defaultOption(&r->option);
  mjv_defaultCamera(&r->camera);
  mjr_defaultContext(&r->context);
  mjv_makeScene(model, &r->scene, 2000);
  mjr_makeContext(model, &r->context, mjFONTSCALE_100);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->context);
  if (r->context.currentBuffer != mjFB_OFFSCREEN) {
    if (error) snprintf(error, (size_t)error_size, "offscreen framebuffer not available");
  }
  cmj_renderer_set_fast(r, 1);
  release_current();
  pthread_mutex_unlock(&gl_lock);
  return r;
}

void cmj_renderer_destroy(cmj_renderer* r) {
  if (!r) return;
  pthread_mutex_lock(&gl_lock);
  make_current(r);
  mjr_freeContext(&r->context);
  mjv_freeScene(&r->scene);
  release_current();
  OSMesaDestroyContext(r->gl);
  pthread_mutex_unlock(&gl_lock);
  free(r->buffer);
  free(r->scratch);
  free(r);
}

void cmj_renderer_set_fast(cmj_renderer* r, int fast) {
  mjtByte on = fast ? 0 : 1;
  r->scene.flags[mjRND_SHADOW] = on;
  r->scene.flags[mjRND_REFLECTION] = on;
  r->scene.flags[mjRND_SKYBOX] = on;
}

int cmj_renderer_render(cmj_renderer* r, const mjModel* m, mjData* d, int camera_id,
                        int width, int height, unsigned char* rgb) {
  return cmj_renderer_render_rgbd(r, m, d, camera_id, width, height, rgb, NULL);
}

int cmj_renderer_render_rgbd(cmj_renderer* r, const mjModel* m, mjData* d, int camera_id,
                             int width, int height, unsigned char* rgb, float* depth) {
  if (width <= 0 || height <= 0 || width > r->context.offWidth ||
      height > r->context.offHeight)
    return -2;
  pthread_mutex_lock(&gl_lock);
  if (make_current(r) != 0) {
    pthread_mutex_unlock(&gl_lock);
    return -1;
  }
  mjr_setBuffer(mjFB_OFFSCREEN, &r->context);
  if (camera_id >= 0) {
    r->camera.type = mjCAMERA_FIXED;
    r->camera.fixedcamid = camera_id;
  } else {
    mjv_defaultFreeCamera(m, &r->camera);
  }
  mjrRect viewport = {0, 0, width, height};
  mjv_updateScene(m, d, &r->option, NULL, &r->camera, mjCAT_ALL, &r->scene);
  mjr_render(viewport, &r->scene, &r->context);
  int row = width * 3;
  size_t depth_offset = ((size_t)row * height + 15) & ~(size_t)15;  /* floats aligned */
  size_t need = depth_offset + (depth ? sizeof(float) * (size_t)width * height : 0);
  if ((size_t)r->scratch_size < need) {
    free(r->scratch);
    r->scratch = (unsigned char*)malloc(need);
    r->scratch_size = (int)need;
  }
  float* raw_depth = depth ? (float*)(r->scratch + depth_offset) : NULL;
  mjr_readPixels(rgb ? r->scratch : NULL, raw_depth, viewport, &r->context);
  release_current();
  pthread_mutex_unlock(&gl_lock);
  // GL rows are bottom-up; callers get top-down.
  if (rgb)
    for (int y = 0; y < height; y++)
      memcpy(rgb + (size_t)y * row, r->scratch + (size_t)(height - 1 - y) * row, (size_t)row);
  if (depth) {
    // The depth buffer is non-linear in [0, 1]; metric depth along the optical axis follows
    // from the clip planes MuJoCo sets (vis.map.znear/zfar scaled by the model extent).
    double extent = m->stat.extent;
    double znear = m->vis.map.znear * extent, zfar = m->vis.map.zfar * extent;
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        double b = raw_depth[(size_t)(height - 1 - y) * width + x];
        depth[(size_t)y * width + x] = (float)(znear / (1.0 - b * (1.0 - znear / zfar)));
      }
  }
  return 0;
}

const char* cmj_renderer_gl_info(cmj_renderer* r) {
  static char info[256];
  pthread_mutex_lock(&gl_lock);
  info[0] = 0;
  if (make_current(r) == 0) {
    const GLubyte* s = glGetString(GL_RENDERER);
    if (s) snprintf(info, sizeof info, "%s", (const char*)s);
    release_current();
  }
  pthread_mutex_unlock(&gl_lock);
  return info;
}
