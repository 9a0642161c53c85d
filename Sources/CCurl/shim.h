#ifndef HAAT_CCURL_SHIM_H
#define HAAT_CCURL_SHIM_H

// curl_easy_setopt, curl_easy_getinfo, curl_multi_setopt and curl_share_setopt are
// variadic and so unavailable from Swift; these typed, non-variadic wrappers are the
// only way Swift reaches them.

#include <curl/curl.h>
#include <sys/socket.h>
#include <netinet/in.h>

static inline CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
  return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_share(CURL *handle, CURLSH *share) {
  return curl_easy_setopt(handle, CURLOPT_SHARE, share);
}

typedef size_t (*ccurl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*ccurl_xferinfo_callback)(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                       curl_off_t ultotal, curl_off_t ulnow);
typedef curl_socket_t (*ccurl_opensocket_callback)(void *userdata, curlsocktype purpose,
                                                   struct curl_sockaddr *address);

static inline CURLcode ccurl_easy_setopt_write_function(CURL *handle, ccurl_data_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

static inline CURLcode ccurl_easy_setopt_header_function(CURL *handle, ccurl_data_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

static inline CURLcode ccurl_easy_setopt_xferinfo_function(CURL *handle, ccurl_xferinfo_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

static inline CURLcode ccurl_easy_setopt_opensocket_function(CURL *handle, ccurl_opensocket_callback callback) {
  return curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
}

static inline CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
  return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode ccurl_easy_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value) {
  return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
  return curl_easy_getinfo(handle, info, value);
}

static inline CURLSHcode ccurl_share_setopt_long(CURLSH *share, CURLSHoption option, long value) {
  return curl_share_setopt(share, option, value);
}

typedef void (*ccurl_lock_function)(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr);
typedef void (*ccurl_unlock_function)(CURL *handle, curl_lock_data data, void *userptr);

static inline CURLSHcode ccurl_share_setopt_lock(CURLSH *share, ccurl_lock_function lock) {
  return curl_share_setopt(share, CURLSHOPT_LOCKFUNC, lock);
}

static inline CURLSHcode ccurl_share_setopt_unlock(CURLSH *share, ccurl_unlock_function unlock) {
  return curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, unlock);
}

static inline CURLSHcode ccurl_share_setopt_userdata(CURLSH *share, void *userdata) {
  return curl_share_setopt(share, CURLSHOPT_USERDATA, userdata);
}

/// The address curl is about to connect to, as a plain sockaddr pointer and length.
static inline const struct sockaddr *ccurl_sockaddr_address(const struct curl_sockaddr *address) {
  return &address->addr;
}

static inline int ccurl_sockaddr_family(const struct curl_sockaddr *address) {
  return address->family;
}

static inline int ccurl_sockaddr_socktype(const struct curl_sockaddr *address) {
  return address->socktype;
}

static inline int ccurl_sockaddr_protocol(const struct curl_sockaddr *address) {
  return address->protocol;
}

static inline unsigned int ccurl_sockaddr_length(const struct curl_sockaddr *address) {
  return address->addrlen;
}

/// CURL_SOCKET_BAD is a macro Swift does not import.
static inline curl_socket_t ccurl_socket_bad(void) {
  return CURL_SOCKET_BAD;
}

/// CURL_WRITEFUNC_PAUSE-like sentinels are macros too; an abort is any short count.
static inline size_t ccurl_write_abort(void) {
  return 0;
}

#endif
