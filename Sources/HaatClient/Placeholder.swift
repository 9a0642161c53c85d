// placeholder
import Yams
