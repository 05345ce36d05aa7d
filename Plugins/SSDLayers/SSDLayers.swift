// placeholder until the SSD layers land
