// The libfcgi wrapper lives here.
import CFastCGI
