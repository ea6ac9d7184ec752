#pragma once
/* Intrusive doubly linked lists: an object embeds LIST_FIELDS(T, name) and the owner keeps a
 * T *head. No allocation, O(1) removal given the element. */

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                            \
        do {                                                      \
                __typeof__(*(head)) **_h = &(head), *_i = (item); \
                if ((_i->name##_next = *_h))                      \
                        _i->name##_next->name##_prev = _i;        \
                _i->name##_prev = NULL;                           \
                *_h = _i;                                         \
        } while (0)

#define LIST_APPEND(name, head, item)                                         \
        do {                                                                  \
                __typeof__(*(head)) **_h = &(head), *_i = (item), *_t;        \
                _i->name##_next = NULL;                                       \
                if (!*_h) {                                                   \
                        _i->name##_prev = NULL;                               \
                        *_h = _i;                                             \
                } else {                                                      \
                        for (_t = *_h; _t->name##_next; _t = _t->name##_next) \
                                ;                                             \
                        _t->name##_next = _i;                                 \
                        _i->name##_prev = _t;                                 \
                }                                                             \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_h = &(head), *_i = (item);       \
                if (_i->name##_next)                                    \
                        _i->name##_next->name##_prev = _i->name##_prev; \
                if (_i->name##_prev)                                    \
                        _i->name##_prev->name##_next = _i->name##_next; \
                else if (*_h == _i)                                     \
                        *_h = _i->name##_next;                          \
                _i->name##_next = _i->name##_prev = NULL;               \
        } while (0)

#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

#define LIST_FOREACH_SAFE(name, i, n, head) \
        for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))
