// The hiredis wrapper and the Redis store live here.
import CHiredis
