//! The shape of a row-major `[C x H x W]` feature map.

use crate::{check, Error};

/// Channels, height and width of a feature map stored row-major as `[C * H * W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MapShape {
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl MapShape {
    /// A shape with every extent at least 1 and `C * H * W` representable.
    ///
    /// # Errors
    /// `InvalidParameter("channels" | "height" | "width")` for a zero extent or an overflowing
    /// product.
    pub fn new(channels: usize, height: usize, width: usize) -> Result<Self, Error> {
        check::parameter(channels > 0, "channels")?;
        check::parameter(height > 0, "height")?;
        check::parameter(width > 0, "width")?;
        let cells = check::product(height, width, "width")?;
        check::product(channels, cells, "channels")?;
        Ok(Self {
            channels,
            height,
            width,
        })
    }

    /// Cells per channel, `H * W`.
    pub fn cells(&self) -> usize {
        self.height * self.width
    }

    /// Values in the map, `C * H * W`.
    pub fn len(&self) -> usize {
        self.channels * self.cells()
    }

    /// Always false: every extent is at least 1.
    pub fn is_empty(&self) -> bool {
        false
    }
}
