#ifndef CHARGE_GATE_CFASTCGI_SHIM_H
#define CHARGE_GATE_CFASTCGI_SHIM_H
#include <fcgiapp.h>

// What the FastCGI event loop (ChargeGateFastCGI) needs beyond Swift's Glibc module: epoll,
// eventfd and accept4 (glibc declares accept4 only under _GNU_SOURCE; this is its prototype).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addr_len, int flags);
#endif
